# Die Wörter des Telefon-Panels auf Deutsch. Jede Datei in diesem Ordner hat dieselben
# Nachrichten-IDs; die Tests des Widgets schlagen fehl, wenn eine fehlt. Platzhalter wie
# { $agent } füllt das Widget aus.

app-title = Telefon
language = Sprache

## Verbindungsstatus

status-connected = Verbunden
status-connecting = Verbindung wird aufgebaut…
status-signed-out = Abgemeldet
status-retry-now = Jetzt erneut versuchen
status-disconnected = Getrennt ({ $reason })
status-reconnecting-in = Neuer Versuch in { $seconds } s

## Warum die Verbindung abbrach

disconnect-closed-1000 = vom Relay geschlossen
disconnect-closed-1001 = das Relay wird beendet
disconnect-closed-1006 = Verbindung verloren
disconnect-closed-1011 = Fehler im Relay
disconnect-closed-1012 = das Relay startet neu
disconnect-closed-1013 = das Relay ist ausgelastet
disconnect-closed-4408 = das Relay hat rechtzeitig nichts empfangen
disconnect-closed-4409 = die Verbindung ist zu weit zurückgefallen
disconnect-closed-4429 = zu viele Anfragen
disconnect-closed-other = geschlossen mit Code { $code }
disconnect-bad-address = die Adresse des Relays ist nicht verwendbar
disconnect-offline = der Browser ist offline
disconnect-no-answer = keine Antwort vom Relay
disconnect-no-welcome = das Relay hat nicht rechtzeitig geantwortet

## Abgemeldet, bereit, Hinweise

signed-out-title = Abgemeldet
signed-out-no-token = Sie sind nicht bei der Telefonanlage angemeldet.
signed-out-refused = Das Relay hat Ihre Anmeldung nicht angenommen. Öffnen Sie das Telefon-Panel erneut aus V2, um sich anzumelden.
sign-in = Anmelden
idle-ready = Bereit — warte auf Anrufe
idle-signed-in-as = Angemeldet als
idle-connecting = Verbindung zur Telefonanlage wird aufgebaut…
host-warning-unknown-origin = Screen-Pop ist aus: Die Seite, die dieses Panel enthält, konnte nicht erkannt werden.
host-warning-origin-not-allowed = Screen-Pop ist aus: { $origin } ist keine zugelassene V2-Adresse. Bitten Sie Ihre Administration, sie zu den Host-Origins der CTI hinzuzufügen.
v2-connect-text = Ihre Anrufe werden in V2 unter Ihrem Namen protokolliert, sobald Sie V2 verbinden. Bis dahin warten sie.
v2-connect = V2 verbinden
calls-label = Anrufe
dismiss-message = Meldung schließen

## Fehler, nach dem Fehlercode des Relays (und den eigenen des Widgets)

error-unknown_tenant = Ihr Unternehmen ist in dieser Telefonanlage nicht eingerichtet.
error-unknown_call = Dieser Anruf ist der Telefonanlage nicht mehr bekannt.
error-not_a_match = Dieser Datensatz trägt die Nummer des Anrufers nicht.
error-invalid_number = Diese Nummer kann nicht gewählt werden.
error-dial_failed = Die Telefonanlage konnte den Anruf nicht aufbauen.
error-command_failed = Die Telefonanlage hat diese Aktion abgelehnt oder nicht ausgeführt.
error-notes_too_long = Die Notizen sind zu lang zum Speichern. Kürzen Sie sie und speichern Sie erneut.
error-unknown_disposition = Dieses Ergebnis wird nicht mehr angeboten. Wählen Sie ein anderes.
error-no_consent_needed = Die Aufzeichnung dieses Anrufs braucht keine Einwilligung.
error-unavailable = Die Telefonanlage ist gerade ausgelastet. Versuchen Sie es gleich noch einmal.
error-already_signed_in = Dieses Panel ist bereits angemeldet.
error-unsupported = Die Telefonanlage unterstützt das nicht.
error-not_connected = Keine Verbindung zur Telefonanlage. Versuchen Sie es erneut, sobald der Status „Verbunden“ zeigt.
error-v2_connect = Verbinden Sie zuerst V2.
error-rate_limited = Zu viele Anfragen auf einmal; diese wurde verworfen. Versuchen Sie es erneut.
error-call_over = Dieser Anruf ist bereits beendet.
error-invalid_record = Die Suche oder der neue Datensatz ist unvollständig.
error-v2_refused = V2 hat den neuen Datensatz abgelehnt.
error-other = Etwas ist schiefgegangen ({ $code }).
problem-not-dialled = Keine Verbindung zur Telefonanlage, daher wurde die Nummer nicht gewählt. Versuchen Sie es erneut, sobald der Status „Verbunden“ zeigt.
problem-no-v2-window = Das V2-Anmeldefenster konnte nicht geöffnet werden. Erlauben Sie Pop-ups für diese Seite und versuchen Sie es erneut.

## Die Anrufkarte

state-ringing-inbound = Eingehender Anruf
state-ringing-outbound = Anruf wird aufgebaut…
state-connected = Verbunden
state-held = Gehalten
state-transferred = Anruf weitergeleitet
state-ended = Anruf beendet
state-other = Anruf
unknown-caller = Unbekannter Anrufer
number-extension = { $number } Durchwahl { $extension }
handed-over-by = Übergeben von
kind-contact = Ansprechpartner
kind-individual-customer = Privatkunde
kind-other = Datensatz
kind-account = Account
open-opportunities = Offene Opportunities
last-interactions = Letzte Interaktionen
other-matches =
    { $count ->
        [one] 1 weiterer Treffer
       *[other] { $count } weitere Treffer
    }
this-is-the-caller = Das ist der Anrufer
this-is-the-caller-named = Das ist der Anrufer: { $name }

## Anrufsteuerung

call-controls = Anrufsteuerung
answer = Annehmen
decline = Ablehnen
cancel-call = Anruf abbrechen
hold = Halten
hang-up = Auflegen
resume = Fortsetzen
transfer-to = Weiterleiten an
transfer-placeholder = kollegin@firma.de
transfer = Weiterleiten
consult-first = Erst Rückfrage
consultation = Rückfrage
consulting = Rückfrage bei
consulting-ringing = (klingelt); der Anrufer wird gehalten.
consulting-on-line = (in der Leitung); der Anrufer wird gehalten.
complete-transfer = Weiterleitung abschließen
back-to-caller = Zurück zum Anrufer

# A button's tooltip: its words and its keyboard shortcut, e.g. "Answer (Alt+Shift+P)".
shortcut-title = { $action } ({ $keys })

## Read out by screen readers when a call rings or changes ($caller: the record's name or the number)

announce-ringing = Eingehender Anruf von { $caller }
announce-calling = { $caller } wird angerufen
announce-connected = Verbunden mit { $caller }
announce-held = { $caller } wird gehalten
announce-transferred = Anruf mit { $caller } weitergeleitet
announce-ended = Anruf mit { $caller } beendet

## Nach dem Anruf

summary-duration = Dauer
summary-result = Ergebnis
not-answered = Nicht angenommen
end-transferred = Weitergeleitet
end-completed = Abgeschlossen
end-missed = Verpasst
end-declined = Abgelehnt
end-failed = Fehlgeschlagen
end-other = Beendet
dismiss = Schließen
notes = Notizen
notes-placeholder = Worum ging es im Gespräch?
outcome = Ergebnis
notes-saved = Gespeichert
notes-not-saved = Noch nicht gespeichert
save = Speichern
activity-logged = In V2 protokolliert
activity-open = Öffnen
activity-not-logged = Nicht protokolliert:
retry = Erneut versuchen
activity-logging = Wird in V2 protokolliert…
activity-retrying = Wird in V2 protokolliert… neuer Versuch
consent-confirmed = Einwilligung zur Aufzeichnung bestätigt von { $by }
consent-needed = Die Aufzeichnung braucht die Einwilligung des Anrufers ({ $jurisdiction }). Fragen Sie, dann bestätigen Sie:
caller-consented = Anrufer hat eingewilligt

## Recent calls
history-title = Letzte Anrufe ({ $count })
history-missed = { $count } verpasst
history-label = Letzte Anrufe, neueste zuerst
history-inbound = Eingehend
history-outbound = Ausgehend
history-activity-failed = Nicht in V2 protokolliert
history-call-back = Zurückrufen
history-call-back-label = { $who } zurückrufen, { $number }
history-call-back-number-label = { $number } zurückrufen

## Ein unbekannter Anrufer: Datensatz anlegen oder finden

not-in-v2 = Nicht in V2
create-contact = Ansprechpartner anlegen
create-individual-customer = Privatkunden anlegen
create-account = Account anlegen
record-number = Telefonnummer
record-given-name = Vorname
record-family-name = Nachname
record-account-name = Name des Accounts
record-account = Account
record-no-account = Kein Account
record-account-hint = Suchen Sie unten nach dem Account, um ihn hier auszuwählen.
record-create = Anlegen
record-cancel = Abbrechen
search-records = In V2 nach Name suchen
search = Suchen
search-results = Gefundene Datensätze
search-nothing = Keine Datensätze gefunden.
refresh-matches = Aktualisieren
open-record = In V2 öffnen
