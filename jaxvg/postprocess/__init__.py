"""Host-side post-processing of model outputs."""
