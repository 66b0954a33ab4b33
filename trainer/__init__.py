"""labcolor trainer: Lab-space pix2pix-style GAN training with PyTorch."""
