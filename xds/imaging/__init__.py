"""XDS-I.b Imaging Document Source and Consumer: DICOM intake, KOS manifests (RAD-68),
RAD-69, WADO-URI (RAD-55) and WADO-RS retrieve."""
