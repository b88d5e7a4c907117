"""Host-side text processing: tokenizers read from model weight folders."""
