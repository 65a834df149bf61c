"""ebRIM 3.0 binding: SubmitObjectsRequest / AdhocQueryRequest into the model, XML back."""
