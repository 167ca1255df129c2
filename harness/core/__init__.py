"""What every stage and face stands on, and none of them owns: the vocabulary of ops and outcomes
(``ops``), the error tree (``errors``), the config's base models and the protocols the registries read a
scenario through (``models``), the run folder (``runfolder``), credentials kept out of every file and
line (``secrets``), the loopback rule (``loopback``), the shipped data (``shipped``), clean stops
(``stopping``) and YAML with each key's line (``yamlsrc``)."""
