"""ebRIM 3.0 binding: parse SubmitObjectsRequest / AdhocQueryRequest into the model, build XML back."""
