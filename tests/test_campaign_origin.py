"""Which campaign a new conversation is credited to (clinicflow.metrics_campaigns)."""

from __future__ import annotations

from typing import Any

import pytest

from clinicflow.loader import load_catalog
from clinicflow.metrics_campaigns import campaign_for

CAMPAIGNS = load_catalog().clinic.campaigns


@pytest.mark.parametrize(
    ("referral", "text", "origin"),
    [
        pytest.param({"title": "DIU sem hormônio"}, "oi", "ig_diu", id="ad-title-subject"),
        pytest.param({"title": "Oferta", "body": "Anúncio do DIU"}, "", "ig_diu", id="ad-body"),
        pytest.param({"id": "ig_menopausa"}, "", "ig_menopausa", id="ad-id-is-campaign-id"),
        pytest.param({"source_id": "IG_DIU"}, "", "ig_diu", id="cloud-api-field-names"),
        pytest.param({"title": "Instagram — Menopausa"}, "", "ig_menopausa", id="ad-title-name"),
        pytest.param({"url": "https://l.ig/x?utm_campaign=ig_diu"}, "", "ig_diu", id="url"),
        pytest.param(
            {"title": "Promoção"},
            "quero saber mais sobre o DIU",
            "ig_diu",
            id="ad-unknown-first-message-known",
        ),
        pytest.param({"title": "Promoção"}, "oi", "ad_referral", id="ad-unknown"),
        pytest.param(None, "Vi o anúncio sobre a menopausa", "ig_menopausa", id="articles"),
        pytest.param(None, "VI O ANUNCIO DO DIU!!", "ig_diu", id="case-and-accents"),
        pytest.param(None, "oi, vi vcs no google", "google_gineco", id="abbreviations"),
        pytest.param(None, "oi", "organic", id="organic"),
        pytest.param(None, "", "organic", id="empty"),
    ],
)
def test_campaign_for(referral: dict[str, Any] | None, text: str, origin: str) -> None:
    assert campaign_for(CAMPAIGNS, referral, text) == origin


def test_no_campaigns() -> None:
    assert campaign_for((), {"title": "DIU"}, "vi o anuncio do diu") == "ad_referral"
    assert campaign_for((), None, "vi o anuncio do diu") == "organic"
