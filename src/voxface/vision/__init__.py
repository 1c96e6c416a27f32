"""voxface.vision"""
