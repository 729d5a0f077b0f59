INSERT INTO grupo_usuario (codigo, nome) VALUES (1, 'Administrador');
INSERT INTO grupo_usuario (codigo, nome) VALUES (2, 'Stock');