"""mirstd.infer"""
