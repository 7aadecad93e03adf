"""Notice periods, objections and what is effective for an account on a given date."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update

from privacy.database import utcnow
from privacy.errors import Conflict
from privacy.errors import ValidationFailed
from privacy.extensions import db
from privacy.processors import notices
from privacy.processors import services
from privacy.processors.models import ListVersion
from privacy.support import services as support
from tests.processors.test_register import make
from tests.processors.test_register import register  # noqa: F401 - fixture
from tests.processors.test_register import with_dpa


def names(subprocessors) -> list[str]:
    return [sp.legal_name for sp in subprocessors]


def backdate_account(account, days: int = 100) -> None:
    """The account existed before the changes below were announced."""
    account.created_at = utcnow() - timedelta(days=days)
    db.session.commit()


@pytest.fixture
def announced(register, tenant):  # noqa: F811
    backdate_account(tenant.account)
    sp = with_dpa(make(["DE"]))
    version = services.activate(sp, actor="operator:dpo")
    db.session.commit()
    return sp, version


def test_a_change_is_effective_only_after_the_notice_period(tenant, announced):
    sp, version = announced
    now = utcnow()

    assert names(notices.effective_for(tenant.account, now)) == []
    assert [v.number for v in notices.pending_for(tenant.account, now)] == [1]
    later = version.effective_at + timedelta(seconds=1)
    assert names(notices.effective_for(tenant.account, later)) == ["Hosting GmbH"]
    assert notices.pending_for(tenant.account, later) == []
    ((number, notified_at),) = notices.notified_of(tenant.account)
    assert number == 1 and notified_at - version.announced_at < timedelta(seconds=5)


def test_an_account_created_after_the_announcement_has_the_list_at_once(register, tenant):  # noqa: F811
    sp = with_dpa(make(["DE"]))
    services.activate(sp, actor="operator:dpo")
    db.session.commit()
    from tests.conftest import make_tenant

    newcomer = make_tenant(name="New Ltd", admin_email="new@new.example")
    assert names(notices.effective_for(newcomer.account)) == ["Hosting GmbH"]
    assert notices.pending_for(newcomer.account) == []


def test_an_objection_within_the_period_blocks_the_sub_processor_for_that_account(
    tenant, other_tenant, announced
):
    sp, version = announced
    backdate_account(other_tenant.account)
    support.create_operator(email="dpo@platform.example", name="Dana", role="dpo", actor="t")
    objection = notices.object_to(tenant.account, version, reason="US parent", actor="member:x")
    db.session.commit()

    later = version.effective_at + timedelta(days=1)
    assert names(notices.effective_for(tenant.account, later)) == []
    assert names(notices.effective_for(other_tenant.account, later)) == ["Hosting GmbH"]
    with pytest.raises(Conflict):
        notices.object_to(tenant.account, version, reason="again", actor="member:x")

    notices.resolve(
        objection, outcome="withdrawn", resolution="customer agreed", actor="operator:d"
    )
    assert names(notices.effective_for(tenant.account, later)) == ["Hosting GmbH"]
    with pytest.raises(Conflict):
        notices.resolve(objection, outcome="termination", resolution="x", actor="operator:d")


def test_an_objection_after_the_period_is_refused(tenant, announced):
    _sp, version = announced
    db.session.execute(update(ListVersion).values(effective_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    with pytest.raises(Conflict, match="notice period"):
        notices.object_to(tenant.account, version, reason="too late", actor="member:x")


def test_objections_need_a_reason_and_resolutions_an_outcome(tenant, announced):
    _sp, version = announced
    with pytest.raises(ValidationFailed):
        notices.object_to(tenant.account, version, reason=" ", actor="member:x")
    objection = notices.object_to(tenant.account, version, reason="why", actor="member:x")
    with pytest.raises(ValidationFailed):
        notices.resolve(objection, outcome="ignored", resolution="", actor="operator:d")


def test_history_answers_what_was_effective_on_a_past_date(tenant, announced):
    sp, version = announced
    # The first change was announced 40 days ago, so it is in force since 10 days ago.
    version.announced_at -= timedelta(days=40)
    version.effective_at -= timedelta(days=40)
    db.session.commit()
    replacement = with_dpa(make(["FR"], legal_name="Hébergement SAS"))
    second = services.activate(replacement, actor="operator:dpo", replaces=sp)
    db.session.commit()

    before_first = version.announced_at + timedelta(days=1)
    assert names(notices.effective_for(tenant.account, before_first)) == []
    assert names(notices.effective_for(tenant.account, utcnow())) == ["Hosting GmbH"]
    assert [v.number for v in notices.pending_for(tenant.account)] == [2]
    after_both = second.effective_at + timedelta(seconds=1)
    assert names(notices.effective_for(tenant.account, after_both)) == ["Hébergement SAS"]


def test_a_new_location_of_an_active_sub_processor_is_announced_and_can_be_objected_to(
    tenant, other_tenant, announced
):
    sp, first = announced
    backdate_account(other_tenant.account)
    first.effective_at = utcnow() - timedelta(days=1)  # the sub-processor is in force
    db.session.commit()
    assert names(notices.effective_for(tenant.account)) == ["Hosting GmbH"]

    services.update(sp, changes={"address": "Neue Straße 2, Berlin"}, actor="operator:dpo")
    assert db.session.scalar(select(func.count()).select_from(ListVersion)) == 1  # not material
    with pytest.raises(Conflict, match="without what it needs"):
        services.update(sp, changes={"locations": ["DE", "IN"]}, actor="operator:dpo")
    db.session.rollback()
    services.update(sp, changes={"locations": ["DE", "CH"]}, actor="operator:dpo")
    db.session.commit()

    change = db.session.scalar(select(ListVersion).where(ListVersion.change == "changed"))
    assert change.notice["fields"] == ["locations"]
    assert [loc["country"] for loc in change.notice["subprocessor"]["locations"]] == ["DE", "CH"]
    notices.object_to(tenant.account, change, reason="no transfers to CH", actor="member:x")
    db.session.commit()
    after = change.effective_at + timedelta(seconds=1)
    assert names(notices.effective_for(tenant.account, after)) == []
    assert names(notices.effective_for(other_tenant.account, after)) == ["Hosting GmbH"]
    assert names(notices.effective_for(tenant.account)) == ["Hosting GmbH"]  # until then
