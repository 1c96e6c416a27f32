"""voxface.evaluate"""
