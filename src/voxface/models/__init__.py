"""voxface.models"""
