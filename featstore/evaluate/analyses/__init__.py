"""Analyses built on the encoding runs' data and splits: RSA, layer similarity and the impact
of low-level features, each written as a ``results/<id>`` group.
"""
