"""voxface.audio"""
