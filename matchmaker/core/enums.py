"""Controlled vocabularies. Stored values are stable codes; labels are translatable."""
from __future__ import annotations

import enum

from flask_babel import lazy_gettext as _l


class LabelledEnum(str, enum.Enum):
    """A str enum whose members carry a translatable label."""

    def __new__(cls, value: str, label):
        obj = str.__new__(cls, value)
        obj._value_ = value
        obj.label = label
        return obj

    def __str__(self) -> str:
        return self.value

    @classmethod
    def choices(cls) -> list[tuple[str, object]]:
        return [(m.value, m.label) for m in cls]

    @classmethod
    def values(cls) -> list[str]:
        return [m.value for m in cls]

    @classmethod
    def label_of(cls, value: str | None):
        try:
            return cls(value).label
        except ValueError:
            return value or ""


class Role(LabelledEnum):
    ENTERPRISE = "enterprise", _l("Enterprise member")
    EXPERT = "expert", _l("Expert")
    COORDINATOR = "coordinator", _l("Coordinator")
    ADMIN = "admin", _l("Administrator")


class OrgKind(LabelledEnum):
    ENTERPRISE = "enterprise", _l("Enterprise")
    UNIVERSITY = "university", _l("University")
    INSTITUTE = "institute", _l("Research institute")
    SOCIETY = "society", _l("National society")
    AGENCY = "agency", _l("Service agency")


class HubCity(LabelledEnum):
    CHONGQING = "chongqing", _l("Chongqing")
    CHENGDU = "chengdu", _l("Chengdu")
    DEYANG = "deyang", _l("Deyang")
    MEISHAN = "meishan", _l("Meishan")
    ZIYANG = "ziyang", _l("Ziyang")
    QINGDAO = "qingdao", _l("Qingdao")


class Industry(LabelledEnum):
    SMART_MANUFACTURING = "smart_manufacturing", _l("Smart manufacturing")
    BIG_DATA = "big_data", _l("Big data")
    NEXT_GEN_NETWORK = "next_gen_network", _l("Next-generation networks")
    NEW_MATERIALS = "new_materials", _l("New materials")
    BIOMEDICINE = "biomedicine", _l("Health and biomedicine")
    ELECTRONICS = "electronics", _l("Electronic information")
    EQUIPMENT = "equipment", _l("Equipment manufacturing")
    AEROSPACE = "aerospace", _l("Aerospace")
    NEW_ENERGY = "new_energy", _l("New energy")
    MARINE = "marine", _l("Modern marine industry")
    CHEMICALS = "chemicals", _l("Advanced chemicals")


class CoopMode(LabelledEnum):
    TRANSFER = "transfer", _l("Technology transfer")
    LICENSE = "license", _l("Technology licensing")
    JOINT_DEV = "joint_dev", _l("Joint development")
    COMMISSIONED = "commissioned", _l("Commissioned development")
    CONSULTING = "consulting", _l("Technical consulting")
    SERVICE = "service", _l("Technical service")


class CapabilityKind(LabelledEnum):
    ACHIEVEMENT = "achievement", _l("Research achievement")
    EXPERTISE = "expertise", _l("Expertise")
    INSTRUMENT = "instrument", _l("Shared instrument")
    PLATFORM = "platform", _l("Platform")


class Visibility(LabelledEnum):
    PUBLIC = "public", _l("Public")
    COORDINATORS = "coordinators", _l("Coordinators only")


class ListingStatus(LabelledEnum):
    DRAFT = "draft", _l("Draft")
    SUBMITTED = "submitted", _l("Submitted")
    PUBLISHED = "published", _l("Published")
    RETURNED = "returned", _l("Returned")
    CLOSED = "closed", _l("Closed")


class Language(LabelledEnum):
    ZH = "zh", _l("Chinese")
    EN = "en", _l("English")
    OTHER = "other", _l("Other")


def sql_in(enum_cls: type[LabelledEnum]) -> str:
    """SQL list literal of an enum's codes, for CHECK constraints."""
    return "(" + ", ".join(f"'{v}'" for v in enum_cls.values()) + ")"
