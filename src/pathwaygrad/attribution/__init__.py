"""Step 4 of the pipeline: attribute the response to the input, through a pathway or not."""
