"""Models in the MLflow ``MLmodel`` directory format: flavors, signatures, input examples."""
