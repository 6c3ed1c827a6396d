"""The sidebar's parts: the model, own weights, the image and the layer and filter (drawn in order by
:mod:`dashboard.shell`)."""
