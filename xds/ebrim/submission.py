"""``lcm:SubmitObjectsRequest`` <-> Submission (ITI TF-3 §4.1.4): parse on receipt, build to send."""

from __future__ import annotations

from lxml import etree

from xds.ebrim.association import build_association, parse_association
from xds.ebrim.documententry import build_document_entry, parse_document_entry
from xds.ebrim.folder import build_folder, parse_folder
from xds.ebrim.rim import RIM, Element, metadata_error
from xds.ebrim.submissionset import build_submission_set, parse_submission_set
from xds.ebrim.vocabulary import EBRIM_21_NAMESPACES, FD, NS_LCM, NS_RIM, SS
from xds.model.metadata import Submission

__all__ = ["parse_submit_objects_request", "build_submit_objects_request"]

_LCM = f"{{{NS_LCM}}}"


def parse_submit_objects_request(root: Element) -> Submission:
    """The objects of a SubmitObjectsRequest.

    Raises XdsError ``XDSRegistryMetadataError`` for a wrong root element, ebRIM 2.1 content,
    an unknown object, or a RegistryPackage that is neither SubmissionSet nor Folder.
    """
    ns = root.nsmap.get(root.prefix) if isinstance(root.tag, str) else None
    qname = root.tag if isinstance(root.tag, str) else ""
    if any(qname.startswith(f"{{{n}}}") for n in EBRIM_21_NAMESPACES) or ns in EBRIM_21_NAMESPACES:
        raise metadata_error("ebRIM 2.1 (XDS.a) content is not accepted; use ebRIM 3.0")
    if qname != _LCM + "SubmitObjectsRequest":
        raise metadata_error(f"expected lcm:SubmitObjectsRequest, got {qname}")
    object_list = root.find(RIM + "RegistryObjectList")
    if object_list is None:
        raise metadata_error("SubmitObjectsRequest has no rim:RegistryObjectList")

    submission = Submission()
    packages: list[Element] = []
    sibling_nodes: dict[str, set[str]] = {}
    for child in object_list:
        if not isinstance(child.tag, str):
            continue  # comments, processing instructions
        tag = child.tag
        if tag == RIM + "ExtrinsicObject":
            submission.document_entries.append(parse_document_entry(child))
        elif tag == RIM + "RegistryPackage":
            packages.append(child)
        elif tag == RIM + "Association":
            submission.associations.append(parse_association(child))
        elif tag == RIM + "Classification":
            node, target = child.get("classificationNode"), child.get("classifiedObject")
            if not node or not target:
                raise metadata_error("a free-standing Classification needs classificationNode "
                                     "and classifiedObject")
            sibling_nodes.setdefault(target, set()).add(node)
        elif tag == RIM + "ObjectRef":
            continue
        else:
            raise metadata_error(f"unexpected element {tag} in RegistryObjectList")

    for rp in packages:
        rp_id = rp.get("id") or ""
        if not rp_id:
            raise metadata_error("RegistryPackage without id")
        nodes = {cl.get("classificationNode") or "" for cl in rp.iterchildren(RIM + "Classification")}
        nodes |= sibling_nodes.pop(rp_id, set())
        if SS.classificationNode in nodes and FD.classificationNode in nodes:
            raise metadata_error(f"RegistryPackage {rp_id} is classified both SubmissionSet and Folder")
        if SS.classificationNode in nodes:
            submission.submission_sets.append(parse_submission_set(rp, nodes))
        elif FD.classificationNode in nodes:
            submission.folders.append(parse_folder(rp, nodes))
        else:
            raise metadata_error(f"RegistryPackage {rp_id} is neither SubmissionSet nor Folder")
    if sibling_nodes:
        target = next(iter(sibling_nodes))
        raise metadata_error(f"Classification of {target}: no such RegistryPackage in the request")
    return submission


def build_submit_objects_request(submission: Submission) -> Element:
    """``lcm:SubmitObjectsRequest`` holding ``submission``: SubmissionSets, DocumentEntries,
    Folders, then Associations, each built with the ids it has (symbolic or UUID)."""
    root = etree.Element(_LCM + "SubmitObjectsRequest", nsmap={"lcm": NS_LCM, "rim": NS_RIM})
    object_list = etree.SubElement(root, RIM + "RegistryObjectList")
    object_list.extend(build_submission_set(ss) for ss in submission.submission_sets)
    object_list.extend(build_document_entry(de) for de in submission.document_entries)
    object_list.extend(build_folder(fd) for fd in submission.folders)
    object_list.extend(build_association(a) for a in submission.associations)
    # The built objects each declare rim:; one declaration on the root is enough.
    etree.cleanup_namespaces(root)
    return root
