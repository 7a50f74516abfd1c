# /etc/profile.d/berth-path.sh: ~/.local/bin stays on PATH for every login shell (sh, bash,
# ssh logins), whatever a user's own ~/.profile does after it.
case ":$PATH:" in
    *":$HOME/.local/bin:"*) ;;
    *) PATH="$HOME/.local/bin:$PATH"; export PATH ;;
esac
