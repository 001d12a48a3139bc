"""Tax IDs: which formats each billing country accepts, and validating a number against them with
``python-stdnum`` (the library Polar uses). A valid number is stored in its compact form and answered as Polar's
``[value, format]`` pair, the format named as Polar and Stripe name it (``eu_vat``, ``gb_vat``, ``us_ein``, …).

The country-to-formats table follows Polar's (``server/polar/tax/tax_id.py``), including its order: the first
format a number is valid for is its type. Formats python-stdnum has no module for are skipped (a number for a
country whose every format is unsupported is refused), as Polar does. A few formats need a rule stdnum lacks;
those rules are below, each with why."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from functools import cache, lru_cache
from typing import Any

import stdnum.exceptions
from stdnum import get_cc_module

COUNTRY_FORMATS: dict[str, tuple[str, ...]] = {
    "AD": ("ad_nrt",),
    "AE": ("ae_trn",),
    "AR": ("ar_cuit",),
    "AU": ("au_abn", "au_arn"),
    "BH": ("bh_vat",),
    "BO": ("bo_tin",),
    "BR": ("br_cnpj", "br_cpf"),
    "CA": ("ca_gst_hst", "ca_pst_bc", "ca_pst_mb", "ca_pst_sk", "ca_qst", "ca_bn"),
    "CH": ("ch_uid", "ch_vat"),
    "CL": ("cl_tin",),
    "CN": ("cn_tin",),
    "CO": ("co_nit",),
    "CR": ("cr_tin",),
    "DO": ("do_rcn",),
    "EC": ("ec_ruc",),
    "EG": ("eg_tin",),
    "GB": ("gb_vat",),
    "GE": ("ge_vat",),
    "HK": ("hk_br",),
    "ID": ("id_npwp",),
    "IL": ("il_vat",),
    "IN": ("in_gst",),
    "IS": ("is_vat",),
    "JP": ("jp_cn", "jp_rn", "jp_trn"),
    "KE": ("ke_pin",),
    "KR": ("kr_brn",),
    "KZ": ("kz_bin",),
    "LI": ("li_uid",),
    "MK": ("mk_vat",),
    "MU": ("mu_tan",),
    "MX": ("mx_rfc",),
    "MY": ("my_frp", "my_itn", "my_sst"),
    "NG": ("ng_tin",),
    "NO": ("no_vat", "no_voec"),
    "NZ": ("nz_gst",),
    "OM": ("om_vat",),
    "PE": ("pe_ruc",),
    "PH": ("ph_tin",),
    "RS": ("rs_pib",),
    "RU": ("ru_inn", "ru_kpp"),
    "SA": ("sa_vat",),
    "SG": ("sg_gst", "sg_uen"),
    "SV": ("sv_nit",),
    "TH": ("th_vat",),
    "TR": ("tr_tin",),
    "TW": ("tw_vat",),
    "UA": ("ua_vat",),
    "US": ("us_ein",),
    "UY": ("uy_ruc",),
    "VE": ("ve_rif",),
    "VN": ("vn_tin",),
    "ZA": ("za_vat",),
}
# Every EU member state takes an EU VAT number.
EU_MEMBERS: tuple[str, ...] = ("AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU")
EU_MEMBERS += ("IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK")
COUNTRY_FORMATS.update({country: ("eu_vat",) for country in EU_MEMBERS})

# Formats whose stdnum module is not named after the format (``<country>.<kind>``).
STDNUM_MODULES = {
    "cl_tin": "stdnum.cl.rut",
    "cr_tin": "stdnum.cr.cpj",
    "il_vat": "stdnum.il.idnr",
    "in_gst": "stdnum.in_.gstin",
    "mk_vat": "stdnum.mk.edb",
    "tr_tin": "stdnum.tr.vkn",
    "tw_vat": "stdnum.tw.ubn",
    "vn_tin": "stdnum.vn.mst",
    "ca_gst_hst": "stdnum.ca.bn",
    "ec_ruc": "stdnum.ec.ruc",
}
_SEPARATORS = re.compile(r"[\s.\-]")
# Ecuador's tax authority issues some company RUCs (third digit 9, head office 001) without a usable check digit.
_EC_COMPANY_RUC = re.compile(r"(0[1-9]|1[0-9]|2[0-4]|30)9\d{7}001")


class InvalidTaxID(ValueError):
    """The number is not valid for any tax ID format of the country (or the country has none)."""


def _digits(number: str, length: int | tuple[int, ...], prefix: str = "") -> str:
    compact = _SEPARATORS.sub("", number).upper().removeprefix(prefix)
    lengths = (length,) if isinstance(length, int) else length
    if len(compact) not in lengths or not compact.isdigit():
        raise InvalidTaxID(number)
    return compact


def _stdnum_module(tax_format: str) -> Any:
    if tax_format in STDNUM_MODULES:
        return importlib.import_module(STDNUM_MODULES[tax_format])
    country, kind = tax_format.split("_", 1)
    return get_cc_module(country, kind)


def _stdnum_validator(module: Any, tax_format: str) -> Callable[[str], str]:
    def validate(number: str) -> str:
        try:
            return str(module.validate(number))
        except stdnum.exceptions.InvalidChecksum:
            compact = str(module.compact(number))
            # Ecuador: see _EC_COMPANY_RUC. Taiwan: since 2023 a UBN's weighted sum may be divisible by 5 (stdnum
            # only knows the older divisible-by-10 rule; a seventh digit 7 allows the sum plus one).
            if tax_format == "ec_ruc" and _EC_COMPANY_RUC.fullmatch(compact):
                return compact
            if tax_format == "tw_vat" and len(compact) == 8 and compact.isdigit():
                total = module.calc_checksum(compact)
                if total % 5 == 0 or (compact[6] == "7" and (total + 1) % 5 == 0):
                    return compact
            raise InvalidTaxID(number) from None
        except stdnum.exceptions.ValidationError:
            raise InvalidTaxID(number) from None

    return validate


@cache
def _validator(tax_format: str) -> Callable[[str], str] | None:
    """The check of one format, or None when python-stdnum has no module for it."""
    if tax_format == "ae_trn":  # a 15-digit TRN; stdnum has no UAE module
        return lambda number: _digits(number, 15)
    if tax_format == "ge_vat":  # Georgian taxpayer numbers: 9 digits (companies) or 11 (people), optional GE
        return lambda number: _digits(number, (9, 11), prefix="GE")
    if tax_format == "mu_tan":  # Mauritius TAN: 8 digits starting with 2 or 3
        return _mauritius_tan
    module = _stdnum_module(tax_format)
    if module is None:
        return None
    validate = _stdnum_validator(module, tax_format)
    if tax_format == "ca_gst_hst":  # a GST/HST account is the 15-character BN (9 digits + RT + 4 digits)
        return lambda number: _refuse(number) if len(module.compact(number)) != 15 else validate(number)
    return validate


def _mauritius_tan(number: str) -> str:
    compact = _digits(number, 8)
    if compact[0] not in "23":
        raise InvalidTaxID(number)
    return compact


def _refuse(number: str) -> str:
    raise InvalidTaxID(number)


def validate_tax_id(number: str, country: str) -> tuple[str, str]:
    """``(compact value, format)`` of ``number`` for the billing ``country`` (ISO-3166 alpha-2); ``InvalidTaxID``
    when no format of the country accepts it."""
    for tax_format in COUNTRY_FORMATS.get(country.upper(), ()):
        validate = _validator(tax_format)
        if validate is None:
            continue
        try:
            return validate(number.strip()), tax_format
        except InvalidTaxID:
            continue
    raise InvalidTaxID(number)


@lru_cache(maxsize=4096)
def typed_tax_id(value: str | None, country: str | None) -> tuple[str, str] | None:
    """A stored tax ID as Polar's ``(value, format)``, or None when there is none or it is not valid for the
    billing country. Tax IDs are validated when written; this re-validates on read for rows stored before
    validation existed, which are answered as no tax ID (never as an ``unknown`` format) until corrected."""
    if not value or not country:
        return None
    try:
        return validate_tax_id(value, country)
    except InvalidTaxID:
        return None
