// Filled by the blocked-layout kernels.
