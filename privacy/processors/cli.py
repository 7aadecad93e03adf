"""`flask processors ...`: the sub-processor register from the command line."""

from __future__ import annotations

import json
from datetime import date

import click
from sqlalchemy import func
from sqlalchemy import select

from privacy import links
from privacy.database import begin_write
from privacy.errors import AppError
from privacy.extensions import db
from privacy.processors import services
from privacy.processors.models import SubProcessor

# Who the register's history, list versions and audit log name for changes made here.
ACTOR = "cli"

# The platform's own sub-processors, as sample entries (example=True, badged on every page):
# the DPO checks names, addresses, contacts and dates against the signed contracts.
EXAMPLES: tuple[dict, ...] = (
    {
        "legal_name": "Amazon Web Services EMEA SARL",
        "address": "38 Avenue John F. Kennedy, L-1855 Luxembourg",
        "contact": "aws-EU-privacy@amazon.com",
        "website": "https://aws.amazon.com/compliance/gdpr-center/",
        "purpose": "Hosting and storage: the service's servers, database, backups and "
        "object storage.",
        "data_categories": [
            "all personal data customers keep in the service",
            "account members' names and e-mail addresses",
        ],
        "subject_categories": ["customers' data subjects", "customers' account members"],
        "locations": ["DE", "US"],
        "services": [
            "Frankfurt, eu-central-1 (Germany): hosting and storage for accounts in the EU region",
            "North Virginia, us-east-1 (United States): hosting and storage for accounts in the "
            "US region",
        ],
        "dpf_certified": True,
        "dpa": ("AWS GDPR DPA 2025-01", date(2025, 1, 15)),
    },
    {
        "legal_name": "Stripe Payments Europe, Limited",
        "address": "1 Grand Canal Street Lower, Grand Canal Dock, Dublin D02 H210, Ireland",
        "contact": "dpo@stripe.com",
        "website": "https://stripe.com/privacy",
        "purpose": "Payments: the subscription billing of customer accounts.",
        "data_categories": [
            "billing contact: name, e-mail and postal address",
            "payment card or bank details (entered at Stripe, never stored by the service)",
        ],
        "subject_categories": ["customers' billing contacts"],
        "locations": ["IE", "US"],
        "services": [
            "Dublin (Ireland): Stripe Payments Europe, the contracting entity",
            "United States: Stripe, Inc. (certified under the EU-US Data Privacy Framework)",
        ],
        "dpf_certified": True,
        "dpa": ("Stripe DPA 2025-02", date(2025, 2, 3)),
    },
    {
        "legal_name": "Google Ireland Limited",
        "address": "Gordon House, Barrow Street, Dublin 4, D04 E5W5, Ireland",
        "contact": "data-protection-office@google.com",
        "website": "https://policies.google.com/privacy",
        "purpose": 'Sign-in: "Sign in with Google" confirms the e-mail address of members '
        "who choose it.",
        "data_categories": ["e-mail address, name and Google account id of members who use it"],
        "subject_categories": ["customers' account members"],
        "locations": ["IE", "US"],
        "services": [
            "Google Identity (OpenID Connect) sign-in, from Ireland and the United States "
            "(Google LLC, certified under the EU-US Data Privacy Framework)",
        ],
        "dpf_certified": True,
        "dpa": ("Google Cloud DPA 2025-03", date(2025, 3, 10)),
    },
    {
        "legal_name": "Mailjet SAS",
        "address": "13-13 bis rue de l'Aubrac, 75012 Paris, France",
        "contact": "dpo@mailjet.com",
        "website": "https://www.mailjet.com/legal/privacy-policy/",
        "purpose": "E-mail delivery: sign-in links, invitations, request confirmations and "
        "change notices.",
        "data_categories": ["recipient e-mail address", "the content of the service's e-mails"],
        "subject_categories": ["customers' account members", "data subjects who make requests"],
        "locations": ["BE", "DE"],
        "services": ["Transactional e-mail from data centres in Belgium and Germany"],
        "dpf_certified": False,
        "dpa": ("Mailjet DPA 2025-01", date(2025, 1, 20)),
    },
)


@click.group()
def processors():
    """Manage the sub-processor register."""


def _existing(name: str) -> SubProcessor | None:
    return db.session.scalar(
        select(SubProcessor).where(func.lower(SubProcessor.legal_name) == name.lower())
    )


def _seed_one(example: dict) -> dict:
    """Create, add the DPA and activate one example (a new list version, announced to every
    account); one already in the register by that name is left as it is."""
    begin_write()  # it reads, then writes: on SQLite, hold the write lock from the start
    existing = _existing(example["legal_name"])
    if existing is not None:
        return {
            "action": "unchanged",
            "legal_name": existing.legal_name,
            "id": str(existing.public_id),
            "status": existing.status,
        }
    data = {k: v for k, v in example.items() if k != "dpa"}
    version_name, signed_on = example["dpa"]
    sp = services.create(data=data, actor=ACTOR, example=True)
    services.add_dpa(sp, version=version_name, signed_on=signed_on, actor=ACTOR)
    version = services.activate(sp, actor=ACTOR)
    db.session.commit()
    return {
        "action": "created",
        "legal_name": sp.legal_name,
        "id": str(sp.public_id),
        "status": sp.status,
        "dpa": version_name,
        "list_version": version.number,
        "effective_at": version.effective_at.isoformat(),
    }


@processors.command("seed")
def seed():
    """Load the platform's own sub-processors as example data (idempotent); JSON lines."""
    try:
        links.base_url()  # the notices mailed to every account's admins link to the service
    except links.MissingBaseURL as exc:
        raise click.ClickException(str(exc)) from None
    created = 0
    for example in EXAMPLES:
        try:
            line = _seed_one(example)
        except AppError as exc:
            db.session.rollback()
            details = exc.data.get("errors")
            raise click.ClickException(
                f"{example['legal_name']}: {exc.data['message']} "
                f"{json.dumps(details) if details else ''}".strip()
            ) from None
        created += line["action"] == "created"
        click.echo(json.dumps(line))
    unchanged = len(EXAMPLES) - created
    message = (
        f"Added and activated {created} example sub-processors; every account is notified."
        if created
        else "Nothing to do: the example sub-processors are in the register already."
    )
    click.echo(json.dumps({"created": created, "unchanged": unchanged, "message": message}))
