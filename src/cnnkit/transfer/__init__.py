"""Transfer learning in the guide's five steps: strategies and their stages (strategies.py), the
finetune run (finetune.py), the scikit-learn head on cached embeddings (features.py)."""
