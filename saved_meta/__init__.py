"""Shipped meta-parameter bundles (installed as the package `hyperadam_keras.saved_meta`)."""
