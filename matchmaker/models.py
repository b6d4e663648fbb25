"""Import every model so the metadata (and Alembic autogenerate) sees all tables."""
from .accounts.models import (ExpertProfile, Membership, MembershipRequest, Organization, User,  # noqa: F401
                              UserRole)
from .accounts.tokens import ApiToken  # noqa: F401
from .challenges.models import Bid, Challenge  # noqa: F401
from .vouchers.models import Voucher, VoucherEntry  # noqa: F401
from .core.audit import AuditEvent  # noqa: F401
from .core.data_version import DataVersion, TableVersion  # noqa: F401
from .indexing.models import IndexJob, ListingVector, VectorModel, VectorSequence  # noqa: F401
from .fairs.models import Fair, FairRegistration, Meeting, MeetingParticipant, MeetingRequest  # noqa: F401
from .listings.models import Capability, Need  # noqa: F401
from .notifications.models import MailMessage, Notification  # noqa: F401
from .pairings.models import Pairing, PairingResponse  # noqa: F401
