"""mirstd.metrics"""
