// Filled by the pooling work.
