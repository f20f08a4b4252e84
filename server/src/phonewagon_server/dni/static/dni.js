/* Phonewagon DNI: the browser script is delivered separately (docs/dni.md, "The script"). */
