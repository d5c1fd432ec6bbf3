"""Look inside a CNN: feature maps, filters, Grad-CAM, and convolutions worked by hand.

Import from the modules (report, gradcam, handwork, conv_demo); this file stays empty so that
`import cnnkit` does not load torch (and the verb `cnnkit.explain` keeps its name)."""
