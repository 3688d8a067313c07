"""mirstd.engine"""
