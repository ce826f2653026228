"""Queues, for admins: the rq queues' depths, the workers, the tenant's failed jobs and
requeue. Without Redis (jobs run in-process) there is nothing to show."""
from __future__ import annotations

from flask import current_app, flash, g, redirect, render_template, url_for

from api.auth import record
from api.console import blp
from api.console.session import page
from api.database import db
from workers import queues_view


@blp.route("/queues")
@page("admin")
def queues_list():
    settings = current_app.config["SETTLE"]
    if not settings.redis_url:
        return render_template("console/queues.html", in_process=True)
    return render_template("console/queues.html", in_process=False,
                           queues=queues_view.overview(settings),
                           workers=queues_view.workers(settings),
                           failed=queues_view.failed_jobs(settings, g.principal.tenant_id))


@blp.route("/queues/failed/<job_id>/requeue", methods=["POST"])
@page("admin")
def queues_requeue(job_id):
    settings = current_app.config["SETTLE"]
    if settings.redis_url and queues_view.requeue(settings, g.principal.tenant_id, job_id):
        record("job.requeued", "job", job_id)
        db().commit()
        flash(f"Job {job_id} requeued.", "ok")
    else:
        flash(f"No failed job {job_id} of this tenant.", "error")
    return redirect(url_for("console.queues_list"))
