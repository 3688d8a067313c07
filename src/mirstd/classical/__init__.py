"""mirstd.classical"""
