"""R²-Tuning (ECCV 2024): a weight-shared R² block over the last K layers of a frozen CLIP."""
