"""The torch-free base every other layer uses: the Lab contract (color), model metadata,
picture headers (header) and I/O (imageio), metrics and the error root (errors). It imports numpy,
OpenCV and Pillow only.
"""
