"""Client actors: Document Consumer (ITI-18); later Document Source, Imaging Document Consumer."""
