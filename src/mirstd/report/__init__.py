"""mirstd.report"""
