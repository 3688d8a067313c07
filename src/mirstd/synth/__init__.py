"""mirstd.synth"""
