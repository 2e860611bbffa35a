"""DICOM for every image telehealth keeps: wound photos, consult captures, evidence overlays and the measurements SR,
exported to a folder or pushed to a PACS over DICOMweb (STOW-RS) through a durable outbox (docs/interop.md)."""
