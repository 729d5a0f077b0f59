create table desenvolvimento(
	id bigint not null auto_increment,                   
	introducao         text  not null,
	historico          text  not null,
	planejamento       text  not null,   
    
    primary key(id)
);