"""Networks of the book, one module each (MLP, CNNs, U-Net) and the uncertainty heads any backbone can use."""
