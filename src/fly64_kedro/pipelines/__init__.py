"""One Kedro pipeline per stage of the study; each builds its jobs from the study grid."""
