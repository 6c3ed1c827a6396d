"""Work that outlives a click: jobs, long runs with progress, maps that refine, the tour's pictures."""
