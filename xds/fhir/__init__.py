"""The FHIR R4 facade at ``/fhir``: ImagingStudy, Endpoint, Patient and PIXm (ITI-83), and MHD
(ITI-65/66/67/68) over the store the SOAP actors write; every resource is an R4B model."""
