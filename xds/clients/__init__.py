"""Client actors: Document Consumer (ITI-18) and, later, Document Source and Imaging Document Consumer."""
