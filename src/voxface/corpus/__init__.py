"""voxface.corpus"""
