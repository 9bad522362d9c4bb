# Les mots du panneau téléphonique en français. Chaque fichier de ce dossier a les mêmes
# identifiants de message ; les tests du widget échouent s'il en manque un. Le widget remplit
# les paramètres comme { $agent }.

app-title = Téléphone
language = Langue

## Ligne d'état de la connexion

status-connected = Connecté
status-connecting = Connexion…
status-signed-out = Déconnecté
status-retry-now = Réessayer maintenant
status-disconnected = Déconnecté ({ $reason })
status-reconnecting-in = Nouvelle tentative dans { $seconds } s

## Pourquoi la connexion s'est interrompue

disconnect-closed-1000 = fermée par le relais
disconnect-closed-1001 = le relais s'arrête
disconnect-closed-1006 = connexion perdue
disconnect-closed-1011 = erreur du relais
disconnect-closed-1012 = le relais redémarre
disconnect-closed-1013 = le relais est surchargé
disconnect-closed-4408 = le relais n'a rien reçu à temps
disconnect-closed-4409 = la connexion a pris trop de retard
disconnect-closed-4429 = trop de requêtes
disconnect-closed-other = fermée avec le code { $code }
disconnect-bad-address = l'adresse du relais est inutilisable
disconnect-offline = le navigateur est hors ligne
disconnect-no-answer = pas de réponse du relais
disconnect-no-welcome = le relais n'a pas répondu à temps

## Déconnecté, prêt, avertissements

signed-out-title = Déconnecté
signed-out-no-token = Vous n'êtes pas connecté au système téléphonique.
signed-out-refused = Le relais n'a pas accepté votre connexion. Rouvrez le panneau téléphonique depuis V2 pour vous connecter.
sign-in = Se connecter
idle-ready = Prêt — en attente d'appels
idle-signed-in-as = Connecté en tant que
idle-connecting = Connexion au système téléphonique…
host-warning-unknown-origin = Remontée de fiche désactivée : la page qui héberge ce panneau n'a pas pu être identifiée.
host-warning-origin-not-allowed = Remontée de fiche désactivée : { $origin } n'est pas une adresse V2 autorisée. Demandez à votre administrateur de l'ajouter aux origines d'hôte de la CTI.
v2-connect-text = Vos appels sont consignés dans V2 à votre nom dès que vous connectez V2. D'ici là, ils attendent.
v2-connect = Connecter V2
calls-label = Appels
dismiss-message = Fermer le message

## Erreurs, selon le code d'erreur du relais (et ceux du widget)

error-unknown_tenant = Votre entreprise n'est pas configurée sur ce système téléphonique.
error-unknown_call = Cet appel n'est plus connu du système téléphonique.
error-not_a_match = Cette fiche ne porte pas le numéro de l'appelant.
error-invalid_number = Ce numéro ne peut pas être composé.
error-dial_failed = Le système téléphonique n'a pas pu passer l'appel.
error-command_failed = Le système téléphonique a refusé ou n'a pas exécuté cette action.
error-notes_too_long = Les notes sont trop longues pour être enregistrées. Raccourcissez-les et enregistrez à nouveau.
error-unknown_disposition = Ce résultat n'est plus proposé. Choisissez-en un autre.
error-no_consent_needed = L'enregistrement de cet appel ne demande pas de consentement.
error-unavailable = Le système téléphonique est momentanément occupé. Réessayez dans un instant.
error-already_signed_in = Ce panneau est déjà connecté.
error-unsupported = Le système téléphonique ne prend pas cela en charge.
error-not_connected = Pas de connexion au système téléphonique. Réessayez quand l'état indique « Connecté ».
error-v2_connect = Connectez d'abord V2.
error-rate_limited = Trop de requêtes à la fois ; celle-ci a été ignorée. Réessayez.
error-call_over = Cet appel est déjà terminé.
error-invalid_record = La recherche ou la nouvelle fiche est incomplète.
error-v2_refused = V2 a refusé la nouvelle fiche.
error-other = Une erreur s'est produite ({ $code }).
problem-not-dialled = Pas de connexion au système téléphonique, le numéro n'a donc pas été composé. Réessayez quand l'état indique « Connecté ».
problem-no-v2-window = Impossible d'ouvrir la fenêtre de connexion V2. Autorisez les fenêtres surgissantes pour cette page et réessayez.

## La fiche d'appel

state-ringing-inbound = Appel entrant
state-ringing-outbound = Appel en cours…
state-connected = En ligne
state-held = En attente
state-transferred = Appel transféré
state-ended = Appel terminé
state-other = Appel
unknown-caller = Appelant inconnu
number-extension = { $number } poste { $extension }
handed-over-by = Transmis par
kind-contact = Contact
kind-individual-customer = Client particulier
kind-other = Fiche
kind-account = Compte
open-opportunities = Opportunités ouvertes
last-interactions = Dernières interactions
other-matches =
    { $count ->
        [one] 1 autre correspondance
       *[other] { $count } autres correspondances
    }
this-is-the-caller = C'est l'appelant
this-is-the-caller-named = C'est l'appelant : { $name }

## Commandes d'appel

call-controls = Commandes d'appel
answer = Répondre
decline = Refuser
cancel-call = Annuler l'appel
hold = Mettre en attente
hang-up = Raccrocher
resume = Reprendre
transfer-to = Transférer à
transfer-placeholder = collegue@entreprise.fr
transfer = Transférer
consult-first = Consulter d'abord
consultation = Consultation
consulting = Consultation avec
consulting-ringing = (sonne) ; l'appelant est en attente.
consulting-on-line = (en ligne) ; l'appelant est en attente.
complete-transfer = Terminer le transfert
back-to-caller = Revenir à l'appelant

# A button's tooltip: its words and its keyboard shortcut, e.g. "Answer (Alt+Shift+P)".
shortcut-title = { $action } ({ $keys })

## Read out by screen readers when a call rings or changes ($caller: the record's name or the number)

announce-ringing = Appel entrant de { $caller }
announce-calling = Appel de { $caller } en cours
announce-connected = En ligne avec { $caller }
announce-held = { $caller } est en attente
announce-transferred = Appel avec { $caller } transféré
announce-ended = Appel avec { $caller } terminé

## Après l'appel

summary-duration = Durée
summary-result = Résultat
not-answered = Sans réponse
end-transferred = Transféré
end-completed = Terminé
end-missed = Manqué
end-declined = Refusé
end-failed = Échoué
end-other = Terminé
dismiss = Fermer
notes = Notes
notes-placeholder = De quoi l'appel a-t-il parlé ?
outcome = Résultat
notes-saved = Enregistré
notes-not-saved = Pas encore enregistré
save = Enregistrer
activity-logged = Consigné dans V2
activity-open = Ouvrir
activity-not-logged = Non consigné :
retry = Réessayer
activity-logging = Consignation dans V2…
activity-retrying = Consignation dans V2… nouvelle tentative
consent-confirmed = Consentement à l'enregistrement confirmé par { $by }
consent-needed = L'enregistrement requiert le consentement de l'appelant ({ $jurisdiction }). Demandez-le, puis confirmez :
caller-consented = L'appelant a consenti

## Recent calls
history-title = Appels récents ({ $count })
history-missed = { $count ->
        [one] { $count } manqué
       *[other] { $count } manqués
    }
history-label = Appels récents, du plus récent au plus ancien
history-inbound = Entrant
history-outbound = Sortant
history-activity-failed = Non consigné dans V2
history-call-back = Rappeler
history-call-back-label = Rappeler { $who }, { $number }
history-call-back-number-label = Rappeler { $number }

## Un appelant inconnu : créer la fiche, ou la trouver

not-in-v2 = Absent de V2
create-contact = Créer un contact
create-individual-customer = Créer un client particulier
create-account = Créer un compte
record-number = Numéro de téléphone
record-given-name = Prénom
record-family-name = Nom
record-account-name = Nom du compte
record-account = Compte
record-no-account = Aucun compte
record-account-hint = Cherchez le compte ci-dessous pour le choisir ici.
record-create = Créer
record-cancel = Annuler
search-records = Chercher dans V2 par nom
search = Chercher
search-results = Fiches trouvées
search-nothing = Aucune fiche trouvée.
refresh-matches = Actualiser
open-record = Ouvrir dans V2
