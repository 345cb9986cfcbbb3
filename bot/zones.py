"""Ignore zones from Telegram: "Ignore this area" on a false alarm, and ``/zones``.

A false alarm offers its box (padded) as a zone of its camera; zones are stored with who
added them and when, survive restarts, and take effect on the running pipeline at once.
Zones from the configuration file are listed too, but only the file removes them.
"""

from __future__ import annotations

import asyncio
import logging
from html import escape

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.ext import CallbackQueryHandler, CommandHandler, ContextTypes

from bot.access import members_only
from bot.outbox import display_name
from bot.render import local_time
from bot.services import Services, services
from storage import Store
from storage.models import AlertStatus, IgnoreZone
from vision.zones import DEFAULT_PADDING, Zone, box_zone

log = logging.getLogger(__name__)

ZONE_ADD, ZONE_REMOVE = "zone-add", "zone-rm"
# The observer runs after the alert buttons' own handlers (group 0) have stored the press.
OBSERVER_GROUP = 1


def zone_of(row: IgnoreZone) -> Zone:
    return Zone(f"zone {row.id}", tuple((float(x), float(y)) for x, y in row.points), row.id)


def stored_zones(store: Store, camera: str) -> tuple[Zone, ...]:
    """The operator-added zones of ``camera``, as the pipeline applies them."""
    return tuple(zone_of(row) for row in store.zones(camera))


def refresh_zones(svc: Services, camera: str) -> None:
    """Hand ``camera``'s pipeline its stored zones (a swap: the next frame uses them)."""
    pipeline = svc.pipelines.get(camera)
    if pipeline is not None:
        pipeline.zones.set_added(stored_zones(svc.store, camera))


def _callback_id(data: str | None) -> int | None:
    raw = (data or "").rpartition(":")[2]
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 12 else None


async def offer_ignore_area(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """After a press that made an alert a false alarm, offer to ignore its area (once per chat).

    Watches every alert button instead of hooking one, so the alert buttons' own flow
    (a confirmation step, taking a false alarm back) stays theirs.
    """
    query = update.callback_query
    alert_id = _callback_id(query.data)
    if alert_id is None or query.message is None or update.effective_user is None:
        return
    svc = services(context)
    if not await asyncio.to_thread(svc.access.is_member, update.effective_user.id):
        return
    alert = await asyncio.to_thread(svc.store.get_alert, alert_id)
    if alert is None or alert.status is not AlertStatus.FALSE_ALARM or not alert.box:
        return
    offered: set[tuple[int, int]] = context.bot_data.setdefault("zone-offers", set())
    key = (query.message.chat.id, alert_id)
    if key in offered:
        return
    offered.add(key)
    await query.message.reply_text(
        f"Alert #{alert_id} on <b>{escape(alert.camera)}</b> was a false alarm. Ignore this area of "
        "the camera from now on? Fires mostly inside it will no longer alert.",
        parse_mode=ParseMode.HTML,
        reply_markup=InlineKeyboardMarkup(
            [[InlineKeyboardButton("Ignore this area", callback_data=f"{ZONE_ADD}:{alert_id}")]]),
    )


@members_only
async def add_zone(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query, svc, alert = await _pressed(update, context, Store.get_alert)
    if alert is None or not alert.box:
        await query.answer("Unknown alert, or it has no area to ignore.")
        return
    existing = [z for z in await asyncio.to_thread(svc.store.zones, alert.camera) if z.alert_id == alert.id]
    if existing:
        await query.answer(f"Already ignored (zone #{existing[0].id}).")
        return
    zone = box_zone(f"alert {alert.id}", alert.box, DEFAULT_PADDING)
    row = await asyncio.to_thread(svc.store.add_zone, alert.camera, [list(p) for p in zone.points],
                                  created_by=update.effective_user.id, alert_id=alert.id)
    await asyncio.to_thread(refresh_zones, svc, alert.camera)
    log.info("user %d added ignore zone #%d on %s from alert #%d", update.effective_user.id, row.id,
             alert.camera, alert.id)
    await query.answer(f"Ignoring this area of {alert.camera}.")
    await query.edit_message_text(
        f"🚫 Ignoring this area of <b>{escape(alert.camera)}</b> (zone #{row.id}, from alert #{alert.id}). "
        "/zones lists and removes zones.", parse_mode=ParseMode.HTML)


@members_only
async def zones_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    text, markup = await asyncio.to_thread(_zones_page, services(context))
    await update.effective_message.reply_text(text, parse_mode=ParseMode.HTML, reply_markup=markup)


@members_only
async def remove_zone(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query, svc, removed = await _pressed(update, context, Store.remove_zone)
    if removed is None:
        await query.answer("That zone is already gone.")
    else:
        await asyncio.to_thread(refresh_zones, svc, removed.camera)
        log.info("user %d removed ignore zone #%d on %s", update.effective_user.id, removed.id, removed.camera)
        await query.answer(f"Zone #{removed.id} removed: {removed.camera} watches that area again.")
    text, markup = await asyncio.to_thread(_zones_page, svc)
    await query.edit_message_text(text, parse_mode=ParseMode.HTML, reply_markup=markup)


async def _pressed(update: Update, context: ContextTypes.DEFAULT_TYPE, action):  # type: ignore[no-untyped-def]
    """The pressed button's query, the services, and ``action(store, id)`` for the id the
    button carries (None for forged data)."""
    query = update.callback_query
    svc = services(context)
    row_id = _callback_id(query.data)
    row = await asyncio.to_thread(action, svc.store, row_id) if row_id is not None else None
    return query, svc, row


def _zones_page(svc: Services) -> tuple[str, InlineKeyboardMarkup | None]:
    stored = svc.store.zones()
    cameras = list(dict.fromkeys([*svc.pipelines, *(z.camera for z in stored)]))
    lines, buttons = ["Ignore zones (detections mostly inside one are dropped):"], []
    for camera in cameras:
        configured = svc.pipelines[camera].zones.configured if camera in svc.pipelines else ()
        added = [z for z in stored if z.camera == camera]
        lines.append(f"📷 <b>{escape(camera)}</b>" + ("" if configured or added else ": none"))
        lines.extend(f"  • {escape(z.name)} (configuration file)" for z in configured)
        for z in added:
            who = escape(display_name(svc.store, z.created_by)) if z.created_by is not None else "?"
            origin = f", from alert #{z.alert_id}" if z.alert_id is not None else ""
            lines.append(f"  • #{z.id} added by {who} at {local_time(z.created_at)}{origin}")
            buttons.append([InlineKeyboardButton(f"Remove #{z.id} ({camera})",
                                                 callback_data=f"{ZONE_REMOVE}:{z.id}")])
    if not cameras:
        lines.append("none")
    return "\n".join(lines), InlineKeyboardMarkup(buttons) if buttons else None


def zone_handlers() -> list[tuple[object, int]]:
    """(handler, group) pairs: the observer must run in its own group, after the alert buttons."""
    return [
        (CommandHandler("zones", zones_command), 0),
        (CallbackQueryHandler(add_zone, pattern=rf"^{ZONE_ADD}:"), 0),
        (CallbackQueryHandler(remove_zone, pattern=rf"^{ZONE_REMOVE}:"), 0),
        (CallbackQueryHandler(offer_ignore_area, pattern=r"^(?!zone-)[a-z-]+:\d+$"), OBSERVER_GROUP),
    ]
