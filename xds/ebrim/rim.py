"""ebRIM 3.0 building blocks: Slot, Name/Description, Classification, ExternalIdentifier."""

from __future__ import annotations

from collections.abc import Iterable

from lxml import etree

from xds.ebrim.vocabulary import NS_RIM, NS_XML, ObjectType
from xds.model.errors import ErrorCode, XdsError
from xds.model.metadata import Author, Slot
from xds.model.values import Code, LocalizedString, new_uuid_urn

__all__ = [
    "RIM", "Element", "Slots", "read_slots", "read_localized", "read_codes", "read_authors",
    "element", "write_slot", "write_localized", "write_code", "write_author",
    "write_external_identifier", "metadata_error", "external_identifiers", "write_version_info",
]

Element = etree._Element
RIM = f"{{{NS_RIM}}}"
_SLOT, _VALUE = RIM + "Slot", RIM + "Value"
_LS = RIM + "LocalizedString"


def metadata_error(context: str) -> XdsError:
    """An ``XDSRegistryMetadataError`` with ``context``."""
    return XdsError(ErrorCode.XDSRegistryMetadataError, context)


class Slots:
    """The Slots directly inside one RegistryObject, by name; names are unique (ebRIM 3.0)."""

    def __init__(self, obj: Element, owner: str) -> None:
        self.by_name: dict[str, Slot] = {}
        for slot_el in obj.iterchildren(_SLOT):
            name = slot_el.get("name") or ""
            if not name:
                raise metadata_error(f"{owner}: Slot without a name")
            if name in self.by_name:
                raise metadata_error(f"{owner}: Slot {name} appears twice")
            values = [v.text or "" for v in slot_el.iterfind(f"{RIM}ValueList/{RIM}Value")]
            self.by_name[name] = Slot(name=name, values=values, slot_type=slot_el.get("slotType"))
        self.owner = owner

    def pop_list(self, name: str) -> list[str]:
        """All values of slot ``name`` (removed from the remaining extras)."""
        slot = self.by_name.pop(name, None)
        return slot.values if slot else []

    def pop_single(self, name: str) -> str | None:
        """The one value of slot ``name``; several values are a metadata error."""
        values = self.pop_list(name)
        if len(values) > 1:
            raise metadata_error(f"{self.owner}: Slot {name} must have one value, has {len(values)}")
        return values[0] if values else None

    def rest(self) -> list[Slot]:
        """The slots nobody popped: extra metadata, kept verbatim."""
        return list(self.by_name.values())


def read_slots(obj: Element, owner: str) -> Slots:
    """The Slots of ``obj``; ``owner`` names it in error messages."""
    return Slots(obj, owner)


def read_localized(obj: Element, tag: str) -> LocalizedString | None:
    """The first LocalizedString of ``rim:Name`` / ``rim:Description`` of ``obj``."""
    ls = obj.find(f"{RIM}{tag}/{_LS}")
    if ls is None:
        return None
    return LocalizedString(
        value=ls.get("value") or "", lang=ls.get(f"{{{NS_XML}}}lang"), charset=ls.get("charset")
    )


def _code_of(cl: Element, owner: str) -> Code:
    node = cl.get("nodeRepresentation")
    if not node:
        raise metadata_error(f"{owner}: coded attribute {cl.get('classificationScheme')} "
                             "has no nodeRepresentation")
    schemes = [v.text or "" for v in cl.iterfind(
        f"{_SLOT}[@name='codingScheme']/{RIM}ValueList/{RIM}Value")]
    if len(schemes) != 1 or not schemes[0]:
        raise metadata_error(f"{owner}: code {node} must have exactly one codingScheme value")
    display = read_localized(cl, "Name")
    if display is None or not display.value:
        raise metadata_error(f"{owner}: code {node} has no display name (rim:Name)")
    return Code(code=node, scheme=schemes[0], display=display)


def _check_classified(cl: Element, obj_id: str, owner: str) -> None:
    classified = cl.get("classifiedObject")
    if classified is not None and classified != obj_id:
        raise metadata_error(
            f"{owner}: Classification classifiedObject {classified} is not the containing object")


def read_codes(obj: Element, obj_id: str, owner: str, author_scheme: str) -> dict[str, list[Code]]:
    """Coded attributes of ``obj`` by classificationScheme: every scheme Classification but
    the authors'. Node classifications (type labels) are read by the caller."""
    codes: dict[str, list[Code]] = {}
    for cl in obj.iterchildren(RIM + "Classification"):
        scheme = cl.get("classificationScheme")
        if not scheme or scheme == author_scheme:
            continue
        _check_classified(cl, obj_id, owner)
        codes.setdefault(scheme, []).append(_code_of(cl, owner))
    return codes


def read_authors(obj: Element, scheme: str, obj_id: str, owner: str) -> list[Author]:
    """Author classifications (``scheme``, empty nodeRepresentation) of ``obj``."""
    authors = []
    for cl in obj.iterchildren(RIM + "Classification"):
        if cl.get("classificationScheme") != scheme:
            continue
        _check_classified(cl, obj_id, owner)
        slots = read_slots(cl, f"{owner} author")
        authors.append(Author(
            person=slots.pop_single("authorPerson"),
            institutions=slots.pop_list("authorInstitution"),
            roles=slots.pop_list("authorRole"),
            specialties=slots.pop_list("authorSpecialty"),
            telecommunications=slots.pop_list("authorTelecommunication"),
        ))
    return authors


def external_identifiers(obj: Element, obj_id: str, owner: str) -> dict[str, list[str]]:
    """ExternalIdentifier values of ``obj`` by identificationScheme."""
    found: dict[str, list[str]] = {}
    for ei in obj.iterchildren(RIM + "ExternalIdentifier"):
        scheme = ei.get("identificationScheme") or ""
        registry_object = ei.get("registryObject")
        if registry_object is not None and registry_object != obj_id:
            raise metadata_error(
                f"{owner}: ExternalIdentifier registryObject {registry_object} "
                "is not the containing object")
        value = ei.get("value")
        if value is None:
            raise metadata_error(f"{owner}: ExternalIdentifier {scheme} has no value")
        found.setdefault(scheme, []).append(value)
    return found


def single_code(codes: dict[str, list[Code]], scheme: str, owner: str, name: str) -> Code | None:
    """The one code of ``scheme`` or None; several are a metadata error."""
    found = codes.get(scheme, [])
    if len(found) > 1:
        raise metadata_error(f"{owner}: {name} must appear at most once, found {len(found)}")
    return found[0] if found else None


def single_identifier(ids: dict[str, list[str]], scheme: str, owner: str, name: str) -> str | None:
    """The one ExternalIdentifier value of ``scheme`` or None; several are an error."""
    found = ids.get(scheme, [])
    if len(found) > 1:
        raise metadata_error(f"{owner}: {name} must appear once, found {len(found)}")
    return found[0] if found else None



# --- writing -------------------------------------------------------------------------------


def element(tag: str, parent: Element | None = None, **attrs: str | None) -> Element:
    """A ``rim:`` element with the non-None ``attrs``, appended to ``parent`` if given."""
    clean = {k: v for k, v in attrs.items() if v is not None}
    if parent is None:
        return etree.Element(RIM + tag, clean, nsmap={"rim": NS_RIM})
    return etree.SubElement(parent, RIM + tag, clean)


def write_slot(parent: Element, name: str, values: Iterable[str], slot_type: str | None = None) -> None:
    """Append ``rim:Slot name=...`` with one Value per item; nothing when ``values`` is empty."""
    values = list(values)
    if not values:
        return
    slot = element("Slot", parent, name=name, slotType=slot_type)
    value_list = element("ValueList", slot)
    for value in values:
        element("Value", value_list).text = value


def set_slot(obj: Element, name: str, values: Iterable[str]) -> None:
    """Replace (or add) slot ``name`` of ``obj`` in place, keeping Slots first (XSD order)."""
    existing = [el for el in obj.iterchildren(_SLOT) if el.get("name") == name]
    for el in existing:
        obj.remove(el)
    holder = element("Slot")
    write_slot(holder, name, values)
    slots = list(obj.iterchildren(_SLOT))
    position = obj.index(slots[-1]) + 1 if slots else 0
    for slot in holder:
        obj.insert(position, slot)


def slot_values(obj: Element, name: str) -> list[str] | None:
    """Values of slot ``name`` directly in ``obj``; None when there is no such slot."""
    for el in obj.iterchildren(_SLOT):
        if el.get("name") == name:
            return [v.text or "" for v in el.iterfind(f"{RIM}ValueList/{RIM}Value")]
    return None


def write_localized(parent: Element, tag: str, text: LocalizedString | None) -> None:
    """Append ``rim:Name`` / ``rim:Description`` holding ``text``."""
    if text is None:
        return
    holder = element(tag, parent)
    ls = element("LocalizedString", holder, charset=text.charset, value=text.value)
    if text.lang:
        ls.set(f"{{{NS_XML}}}lang", text.lang)


def write_version_info(parent: Element, version: str | None) -> None:
    """Append ``rim:VersionInfo versionName=...`` (explicit: the XSD default is 1.1)."""
    if version is not None:
        element("VersionInfo", parent, versionName=version)


def write_code(parent: Element, scheme: str, code: Code) -> None:
    """Append a coded-attribute Classification of ``parent``."""
    cl = element(
        "Classification", parent, id=new_uuid_urn(), objectType=ObjectType.Classification,
        classificationScheme=scheme, classifiedObject=parent.get("id"),
        nodeRepresentation=code.code,
    )
    write_slot(cl, "codingScheme", [code.scheme])
    write_localized(cl, "Name", code.display or LocalizedString(value=code.code))


def write_author(parent: Element, scheme: str, author: Author) -> None:
    """Append an author Classification (empty nodeRepresentation) of ``parent``."""
    cl = element(
        "Classification", parent, id=new_uuid_urn(), objectType=ObjectType.Classification,
        classificationScheme=scheme, classifiedObject=parent.get("id"), nodeRepresentation="",
    )
    write_slot(cl, "authorPerson", [author.person] if author.person else [])
    write_slot(cl, "authorInstitution", author.institutions)
    write_slot(cl, "authorRole", author.roles)
    write_slot(cl, "authorSpecialty", author.specialties)
    write_slot(cl, "authorTelecommunication", author.telecommunications)


def write_node_classification(parent: Element, node: str) -> None:
    """Append a ``classificationNode`` Classification (SS / Folder type label, limitedMetadata)."""
    element(
        "Classification", parent, id=new_uuid_urn(), objectType=ObjectType.Classification,
        classifiedObject=parent.get("id"), classificationNode=node,
    )


def write_external_identifier(parent: Element, scheme: str, name: str, value: str | None) -> None:
    """Append an ExternalIdentifier of ``parent`` with its fixed readable name."""
    if value is None:
        return
    ei = element(
        "ExternalIdentifier", parent, id=new_uuid_urn(), objectType=ObjectType.ExternalIdentifier,
        registryObject=parent.get("id"), identificationScheme=scheme, value=value,
    )
    write_localized(ei, "Name", LocalizedString(value=name))


__all__ += ["write_node_classification", "single_code", "single_identifier", "set_slot", "slot_values"]
