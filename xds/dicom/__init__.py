"""DICOM wire formats and networking helpers: UIDs, Part-10 files, transfer-syntax conversion,
the C-STORE SCP. Built on pydicom and pynetdicom."""
