"""The delivery core: the only code that writes Message, ChannelStatus and StatusChange rows.

Every change of a message's state or status here is a guarded transition: the UPDATE
names what it expects to find (the claim token a worker holds, the state it read, or,
for statuses, the rows it locked and read again), and only when it changed a row does
the same transaction write the history and schedule the signal for after the commit.
So a late reply, a second poller or a worker that lost its claim can never move a
message backwards, signal twice or overwrite what another wrote.

- :mod:`~django_smsfly.delivery.records` what every write shares: history rows,
  signals after the commit, storable text, outcome writes that survive a lost
  database connection.
- :mod:`~django_smsfly.delivery.sending` write a message, take a send slot, claim
  it, make the request.
- :mod:`~django_smsfly.delivery.outcomes` store what the request came to (accepted,
  failed, unknown, queued for a retry), guarded by the claim.
- :mod:`~django_smsfly.delivery.repair` what an operator does: send again, attach a
  known message id to an unknown message.
- :mod:`~django_smsfly.delivery.schedule` when a status is asked for next.
- :mod:`~django_smsfly.delivery.syncing` claim messages due for a status check, poll
  them, and merge the replies forward.
- :mod:`~django_smsfly.delivery.sweep` the work of one ``smsfly_sync`` pass: settle
  dead workers' messages, send what is due, poll what is due.
- :mod:`~django_smsfly.delivery.retention` delete old finished messages.

Nothing here imports :mod:`django_smsfly.tasks` or :mod:`django_smsfly.services`: they
call in, never the other way round.
"""
