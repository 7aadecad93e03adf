"""The extension objects (database, OpenAPI, rate limits, CSRF): created here, bound to an
app in create_app (privacy.app.register_extensions). Migrations (Flask-Migrate) are bound
when first needed: privacy.database.init_migrations."""

from __future__ import annotations

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from privacy import schemas
from privacy.api import PrivacyApi

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
api = PrivacyApi(spec_kwargs={"extra_plugins": [schemas.OpenApiExtras()]})
# Limits are declared on the views that need them (sign-in, public forms); the client
# address is the proxy-corrected remote address (PRIVACY_PROXY_HOPS).
limiter = Limiter(key_func=get_remote_address, headers_enabled=True, strategy="moving-window")
# Form posts of the pages; checked in privacy.pages before the view, never on /api/ routes
# (those authenticate with bearer tokens, which a cross-site form cannot send).
csrf = CSRFProtect()
