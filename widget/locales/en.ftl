# The phone panel's words in English (the default, and the fallback for a message another
# language lacks). Every file in this folder has the same message ids; the widget's tests fail
# when one is missing. Placeables such as { $agent } are filled in by the widget.

app-title = Phone
language = Language

## Connection status line

status-connected = Connected
status-connecting = Connecting…
status-signed-out = Signed out
status-retry-now = Retry now
# $reason: one of the disconnect-* messages below.
status-disconnected = Disconnected ({ $reason })
# $seconds: whole seconds until the next attempt.
status-reconnecting-in = Reconnecting in { $seconds }s

## Why the connection dropped (shown inside status-disconnected)

disconnect-closed-1000 = closed by the relay
disconnect-closed-1001 = the relay is going away
disconnect-closed-1006 = connection lost
disconnect-closed-1011 = relay error
disconnect-closed-1012 = the relay is restarting
disconnect-closed-1013 = the relay is busy
disconnect-closed-4408 = the relay heard nothing in time
disconnect-closed-4409 = the connection fell behind
disconnect-closed-4429 = too many requests
# $code: the WebSocket close code.
disconnect-closed-other = closed with code { $code }
disconnect-bad-address = the relay address is not usable
disconnect-offline = the browser is offline
disconnect-no-answer = no answer from the relay
disconnect-no-welcome = the relay did not answer in time

## Signed out, idle, warnings

signed-out-title = Signed out
signed-out-no-token = You are not signed in to the phone system.
signed-out-refused = The relay did not accept your sign-in. Open the phone panel from V2 again to sign in.
sign-in = Sign in
idle-ready = Ready — waiting for calls
# Followed by the rep's user name.
idle-signed-in-as = Signed in as
idle-connecting = Connecting to the phone system…
host-warning-unknown-origin = Screen pop is off: the page hosting this panel could not be identified.
# $origin: the address of the page that hosts the panel.
host-warning-origin-not-allowed = Screen pop is off: { $origin } is not an allowed V2 address. Ask your administrator to add it to the CTI's host origins.
v2-connect-text = Your calls are logged in V2 as you once you connect V2. Until then they wait.
v2-connect = Connect V2
calls-label = Calls
dismiss-message = Dismiss message

## Errors, by the relay's error code (and the widget's own)

error-unknown_tenant = Your company is not set up on this phone system.
error-unknown_call = That call is no longer known to the phone system.
error-not_a_match = That record does not carry the caller's number.
error-invalid_number = That is not a phone number that can be dialled.
error-dial_failed = The phone system could not place the call.
error-command_failed = The phone system refused or failed that action.
error-notes_too_long = The notes are too long to save. Shorten them and save again.
error-unknown_disposition = That outcome is not offered any more. Pick another.
error-no_consent_needed = This call's recording needs no consent.
error-unavailable = The phone system is busy for a moment. Try again shortly.
error-already_signed_in = This panel is already signed in.
error-unsupported = The phone system does not support that.
error-not_connected = Not connected to the phone system. Try again once the status shows Connected.
error-v2_connect = Connect V2 first.
error-rate_limited = Too many requests at once; that one was dropped. Try again.
error-call_over = That call is already over.
error-invalid_record = The search or the new record is not complete.
error-v2_refused = V2 refused the new record.
# An error code this version of the panel does not know yet.
error-other = Something went wrong ({ $code }).
problem-not-dialled = Not connected to the phone system, so the number was not dialled. Try again once the status shows Connected.
problem-no-v2-window = Could not open the V2 sign-in window. Allow pop-ups for this page and try again.

## The call card

state-ringing-inbound = Incoming call
state-ringing-outbound = Calling…
state-connected = Connected
state-held = On hold
state-transferred = Call transferred
state-ended = Call ended
state-other = Call
unknown-caller = Unknown caller
# $number: the caller's number as shown; $extension: their extension.
number-extension = { $number } ext. { $extension }
# Followed by the colleague's name.
handed-over-by = Handed over by
kind-contact = Contact
kind-individual-customer = Individual customer
kind-other = Record
kind-account = Account
open-opportunities = Open opportunities
last-interactions = Last interactions
other-matches =
    { $count ->
        [one] 1 other match
       *[other] { $count } other matches
    }
this-is-the-caller = This is the caller
# $name: the record's name (read by screen readers on the button).
this-is-the-caller-named = This is the caller: { $name }

## Call controls

call-controls = Call controls
answer = Answer
decline = Decline
cancel-call = Cancel call
hold = Hold
hang-up = Hang up
resume = Resume
transfer-to = Transfer to
transfer-placeholder = colleague@company.com
transfer = Transfer
consult-first = Consult first
consultation = Consultation
# Followed by the colleague's name and consulting-ringing or consulting-on-line.
consulting = Consulting
consulting-ringing = (ringing); the caller is on hold.
consulting-on-line = (on the line); the caller is on hold.
complete-transfer = Complete transfer
back-to-caller = Back to the caller

# A button's tooltip: its words and its keyboard shortcut, e.g. "Answer (Alt+Shift+P)".
shortcut-title = { $action } ({ $keys })

## Read out by screen readers when a call rings or changes ($caller: the record's name or the number)

announce-ringing = Incoming call from { $caller }
announce-calling = Calling { $caller }
announce-connected = Connected with { $caller }
announce-held = { $caller } is on hold
announce-transferred = Call with { $caller } transferred
announce-ended = Call with { $caller } ended

## After the call

summary-duration = Duration
summary-result = Result
not-answered = Not answered
end-transferred = Transferred
end-completed = Completed
end-missed = Missed
end-declined = Declined
end-failed = Failed
end-other = Ended
dismiss = Dismiss
notes = Notes
notes-placeholder = What was the call about?
outcome = Outcome
notes-saved = Saved
notes-not-saved = Not saved yet
save = Save
activity-logged = Logged in V2
activity-open = Open
# Followed by V2's reason.
activity-not-logged = Not logged:
retry = Retry
activity-logging = Logging to V2…
# Followed by the reason in brackets.
activity-retrying = Logging to V2… retrying
# $by: who confirmed.
consent-confirmed = Recording consent confirmed by { $by }
# $jurisdiction: whose rules need the consent, e.g. DE.
consent-needed = Recording needs the caller's consent ({ $jurisdiction }). Ask, then confirm:
caller-consented = Caller consented

## Recent calls
# $count: how many calls the history holds (at most 20).
history-title = Recent calls ({ $count })
# $count: how many of them were missed.
history-missed = { $count } missed
history-label = Recent calls, newest first
history-inbound = Incoming
history-outbound = Outgoing
history-activity-failed = Not logged in V2
history-call-back = Call back
# $who: the record's name; $number: the number dialled.
history-call-back-label = Call back { $who }, { $number }
# $number: the number dialled.
history-call-back-number-label = Call back { $number }

## An unknown caller: create the record, or find it

not-in-v2 = Not in V2
create-contact = Create contact
create-individual-customer = Create individual customer
create-account = Create account
record-number = Phone number
record-given-name = First name
record-family-name = Last name
record-account-name = Account name
record-account = Account
record-no-account = No account
record-account-hint = Search for the account below to pick it here.
record-create = Create
record-cancel = Cancel
search-records = Find in V2 by name
search = Search
search-results = Records found
search-nothing = No records found.
refresh-matches = Refresh
open-record = Open in V2
